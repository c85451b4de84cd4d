-- The eight OCSE categories of the guideline (shared/spec/categories.csv), plus
-- `unclassified`, the code a reporter may choose instead of one of them.
with

categories as not materialized (

    select * from {{ ref('ref_categories') }}

),

final as (

    select
        category_code,
        label_zh,
        label_en,
        zero_tolerance as is_zero_tolerance,
        is_csam,
        false as is_unclassified

    from categories

    union all

    select
        'unclassified' as category_code,
        '未分类' as label_zh,
        'Unclassified (reporter chose no category)' as label_en,
        false as is_zero_tolerance,
        false as is_csam,
        true as is_unclassified

)

select * from final
