-- What the models maintained incrementally by entity need to know about themselves on a run
-- (macros/incremental_changes.sql): one row per such model with the watermark it left (null
-- when it has none yet) and, as of this run, the digest of the reference data, the last
-- ingested file and whether a policy version took effect since its watermark. A view:
-- built on every run, it is read while the models that follow are compiled.
with

watermarks as not materialized (

    select * from {{ ref('stg_dbt_state__incremental_state') }}

),

ledger as not materialized (

    select * from {{ ref('stg_ingest__ledger') }}

),

policy_versions as not materialized (

    select * from {{ ref('int_policy_versions') }}

),

maintained as (

    select unnest([
        {%- for model in changed_entity_models() %}
            '{{ model }}'{{ ',' if not loop.last }}
        {%- endfor %}
    ]) as model

),

-- The reference data (policy and categories) as one digest: a change re-judges everything.
reference as (

    select md5(concat_ws(
        '|',
        {%- for model in incremental_reference_models() %}
            (
                -- each row as text: the alias is the row (sqlfluff sees no use of it)
                select
                    md5(coalesce(
                        string_agg(reference_row::varchar, ';' order by reference_row::varchar),
                        ''
                    ))
                from {{ ref(model) }} as reference_row  -- noqa: AL05
            ){{ ',' if not loop.last }}
        {%- endfor %}
    )) as reference_digest

),

final as (

    select
        maintained.model,
        watermarks.built_as_of,
        watermarks.built_through_file_id,
        watermarks.fingerprint as built_fingerprint,
        reference.reference_digest,
        (select coalesce(max(ledger.file_id), 0) from ledger) as latest_file_id,
        exists(
            select 1 from policy_versions
            where
                policy_versions.valid_from > watermarks.built_as_of
                and policy_versions.valid_from <= {{ as_of() }}
        ) as is_policy_changed_since_built

    from maintained
    cross join reference
    left join watermarks on maintained.model = watermarks.model

)

select * from final
