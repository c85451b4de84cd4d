-- The accounts and contents whose facts may have changed since the oldest watermark of the
-- models maintained incrementally (macros/incremental_changes.sql): those named, in any of
-- their versions, by a record with a version ingested since or a timestamp in (T_prev, T];
-- the accounts whose takedown user may have moved (any action on a changed content); and
-- the accounts with a tier interval that ended in (T_prev, T]. Empty when no such model
-- has a watermark yet (they are all built in full then).
-- depends_on: {{ source('raw', 'screening_hits') }}, {{ source('raw', 'reports') }}
-- depends_on: {{ source('raw', 'enforcement_actions') }}, {{ source('raw', 'cases') }}
{%- set marks = incremental_watermarks(changed_entity_models()).values() | list if execute else [] %}
{#- feed: (record key, the account it names, the content it names) -#}
{%- set feeds = {
    'screening_hits': ('hit_id', 'uploader_id_ref', 'content_id'),
    'reports': ('report_id', 'reported_user_id_ref', none),
    'enforcement_actions': ('action_id', 'user_id_ref', 'content_id'),
    'cases': ('case_id', 'subject_user_id_ref', none),
} %}

{%- if marks | length == 0 %}

select null::varchar as entity, null::varchar as entity_key
where false

{%- else %}
{%- set since_as_of = marks | map(attribute='as_of') | min %}
{%- set since_file_id = marks | map(attribute='through_file_id') | min %}

with

{% for feed, (record_key, account_column, content_column) in feeds.items() %}
{%- set relation = source('raw', feed) %}
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
    select user_id_ref from {{ source('raw', 'enforcement_actions') }}
    where content_id in (select entity_key from contents)
    {%- set intervals = adapter.get_relation(database=target.database, schema='intermediate', identifier='int_user_tier_intervals') %}
    {%- if intervals is not none %}
    union
    select user_ref from {{ intervals }}
    where ended_at > '{{ since_as_of }}'::timestamptz and ended_at <= {{ as_of() }}
    {%- endif %}

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
