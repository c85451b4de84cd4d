-- The accounts and contents whose facts may have changed since the oldest watermark of the
-- models maintained incrementally (macros/incremental_changes.sql): those named, in any of
-- their versions, by a record with a version ingested since or a timestamp in (T_prev, T];
-- the accounts whose takedown user may have moved (any action on a changed content); and
-- the accounts with a list window that ended in (T_prev, T] (a violation or a report leaving
-- its window). Empty when no such model has a watermark yet (they are all built in full
-- then).
{#- every dependency named while dbt parses (the body below is compiled only on a run) -#}
{%- do ref('int_incremental_context') -%}
{%- do ref('int_policy_tier_rules') -%}
{%- for feed in ['screening_hits', 'reports', 'enforcement_actions', 'cases'] -%}
    {%- do ref('base_raw__' ~ feed) -%}
{%- endfor -%}
{%- set marks = (incremental_watermarks(changed_entity_models()).values() | list)
    if execute else [] %}
{#- feed: (record key, the account it names, the content it names) -#}
{%- set feeds = {
    'screening_hits': ('hit_id', 'uploader_id_ref', 'content_id'),
    'reports': ('report_id', 'reported_user_id_ref', none),
    'enforcement_actions': ('action_id', 'user_id_ref', 'content_id'),
    'cases': ('case_id', 'subject_user_id_ref', none),
} %}

{%- if marks | length == 0 %}

    select
        null::varchar as entity,
        null::varchar as entity_key
    where false

{%- else %}
{%- set since_as_of = marks | map(attribute='as_of') | min %}
{%- set since_file_id = marks | map(attribute='through_file_id') | min %}

with

{% for feed, (record_key, account_column, content_column) in feeds.items() %}
{%- set relation = ref('base_raw__' ~ feed) %}
{%- set timestamps = [] %}
{%- for column in adapter.get_columns_in_relation(relation) %}
    {%- if 'timestamp' in column.dtype | lower and column.name != '_ingested_at' %}
        {%- do timestamps.append(column.name) %}
    {%- endif %}
{%- endfor %}
-- every version of each {{ feed }} record that may read differently at T than at T_prev
{{ feed }}_changed as (

    select * from {{ relation }}
    where {{ record_key }} in (
        select {{ record_key }} from {{ relation }}
        where _file_id > {{ since_file_id }}
        {%- for column in timestamps %}
            or ({{ column }} > '{{ since_as_of }}'::timestamptz and {{ column }} <= {{ as_of() }})
        {%- endfor %}
    )

),

{% endfor %}

-- The list windows of every policy version in force by T (int_policy_tier_rules).
windows as (

    select distinct
        unnest(['violation', 'violation', 'report']) as kind,
        unnest([repeat_window_days, violation_window_days, reports_window_days]) as window_days
    from {{ ref('int_policy_tier_rules') }}
    where valid_from <= {{ as_of() }}

),

contents as (

    {%- for feed, (record_key, account_column, content_column) in feeds.items() if content_column %}
    {{ 'union' if not loop.first }}
    select {{ content_column }} as entity_key from {{ feed }}_changed
    {%- endfor %}

),

accounts as (

    {% for feed, (record_key, account_column, content_column) in feeds.items() %}
    select {{ account_column }} as entity_key from {{ feed }}_changed
    union
    {% endfor %}
    -- the first qualifying action names the takedown's account: any action on the content
    select user_id_ref from {{ ref('base_raw__enforcement_actions') }}
    where content_id in (select entity_key from contents)
    union
    -- a violation leaving a list window (any window of any policy version: a superset)
    select user_id_ref from {{ ref('base_raw__enforcement_actions') }}
    where content_id is not null
        and exists (
            select 1 from windows
            where windows.kind = 'violation'
                and actioned_at + to_days(windows.window_days) > '{{ since_as_of }}'::timestamptz
                and actioned_at + to_days(windows.window_days) <= {{ as_of() }}
        )
    union
    -- a report leaving the reports window
    select reported_user_id_ref from {{ ref('base_raw__reports') }}
    where exists (
        select 1 from windows
        where windows.kind = 'report'
            and received_at + to_days(windows.window_days) > '{{ since_as_of }}'::timestamptz
            and received_at + to_days(windows.window_days) <= {{ as_of() }}
    )

),

final as (

    select 'content' as entity, entity_key from contents
    where entity_key is not null
    union all
    select 'account' as entity, entity_key from accounts
    where entity_key is not null

)

select * from final

{%- endif %}
