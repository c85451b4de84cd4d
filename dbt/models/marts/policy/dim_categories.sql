-- The published copy of the reference model int_categories (models/intermediate/reference):
-- the dashboards, exports and outside tools read this one, under its contract.
with

reference as not materialized (

    select * from {{ ref('int_categories') }}

),

final as (

    select
        category_code,
        label_zh,
        label_en,
        is_zero_tolerance,
        is_csam,
        is_unclassified

    from reference

)

select * from final
