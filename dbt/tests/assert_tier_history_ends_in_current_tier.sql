-- Every account in dim_user_tiers has exactly one current row in its history (valid_to
-- null), the same tier and reason, and the history has no gaps or overlaps.
with

history as (

    select
        *,
        lead(valid_from) over (partition by user_ref order by valid_from) as next_from

    from {{ ref('fct_user_tier_history') }}

),

current_rows as (

    select user_ref, count(*) as current_rows
    from history
    where valid_to is null
    group by user_ref

),

tiers as (

    select * from {{ ref('dim_user_tiers') }}

)

select tiers.user_ref, 'no single current history row' as problem
from tiers
left join current_rows on tiers.user_ref = current_rows.user_ref
where coalesce(current_rows.current_rows, 0) != 1

union all

select history.user_ref, 'history row without an account' as problem
from history
anti join tiers on history.user_ref = tiers.user_ref

union all

select user_ref, 'gap or overlap' as problem
from history
where valid_to is distinct from next_from
