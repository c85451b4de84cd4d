{#- The current state of versioned records as of T: among the versions known by T
    (updated_at <= T), the one with the greatest updated_at; on a tie, the one ingested
    last (greatest file id, then greatest row number) wins (feeds.md).

    Staging models are incremental (raw history only grows, and it is the biggest thing in
    the warehouse). A run re-stages only the records that can have changed since the last
    one: those with a version in a file ingested since, or with a version whose updated_at
    has come within T since. Both are tracked in the model itself (_staged_as_of,
    _staged_through_file_id). T may not move backwards on an incremental run: `ocse run`
    then does a full refresh (and this macro refuses, should dbt be run by hand). -#}
{% macro current_version(relation, record_key) -%}
    {%- set watermark = staging_watermark() -%}
    select
        *,
        {{ as_of() }} as _staged_as_of,
        (select max(_file_id) from {{ relation }}) as _staged_through_file_id

    from {{ relation }}
    where updated_at <= {{ as_of() }}
    {%- if watermark is not none %}
        and {{ record_key }} in (
            select {{ record_key }} from {{ relation }}
            where updated_at <= {{ as_of() }}
                and (
                    _file_id > {{ watermark.file_id }}
                    or updated_at > '{{ watermark.as_of }}'::timestamptz
                )
        )
    {%- endif %}
    qualify row_number() over (
        partition by {{ record_key }}
        order by updated_at desc, _file_id desc, _row_number desc
    ) = 1
{%- endmacro %}

{#- On an incremental run, the T and the last file id the model was staged through;
    none on a full build. -#}
{% macro staging_watermark() -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set row = run_query(
        "select max(_staged_as_of)::varchar as as_of, coalesce(max(_staged_through_file_id), -1) as file_id, "
        ~ "max(_staged_as_of) > " ~ as_of() ~ " as moved_back from " ~ this
    ).rows[0] -%}
    {%- if row['as_of'] is none -%}
        {{ return({'as_of': '-infinity', 'file_id': -1}) }}
    {%- endif -%}
    {%- if row['moved_back'] -%}
        {{ exceptions.raise_compiler_error(
            this ~ " was staged as of " ~ row['as_of'] ~ ", later than this run's T: "
            ~ "an incremental run cannot go back in time. Run with --full-refresh "
            ~ "(ocse run does this by itself)."
        ) }}
    {%- endif -%}
    {{ return({'as_of': row['as_of'], 'file_id': row['file_id']}) }}
{%- endmacro %}
