-- Every policy version with the interval it is in force: from its effective_from until
-- the next version's (null while it is the newest).
with

versions as not materialized (

    select * from {{ ref('policy_versions') }}

),

final as (

    select
        policy_version,
        effective_from as valid_from,
        lead(effective_from) over (order by effective_from) as valid_to,
        near_breach_share,
        approved_by,
        description

    from versions

)

select * from final
