{#- The current state of versioned records as of T: among the versions known by T
    (updated_at <= T), the one with the greatest updated_at; on a tie, the one ingested
    last (greatest file id, then greatest row number) wins (feeds.md). -#}
{% macro current_version(relation, record_key) -%}
    select *
    from {{ relation }}
    where updated_at <= {{ as_of() }}
    qualify row_number() over (
        partition by {{ record_key }}
        order by updated_at desc, _file_id desc, _row_number desc
    ) = 1
{%- endmacro %}
