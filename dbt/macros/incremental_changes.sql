{#- Incremental marts keyed by the entities whose facts changed (bench/NOTES.md, issue 7).

    A few models are costly because they compute over every account or every content of the
    year: the tier intervals and history (per account) and the content takedowns (per
    content). Between two runs at T_prev and T, what they hold can change only for
      - the records (hits, reports, actions, cases) with a version in a file ingested since,
        or with any timestamp in (T_prev, T]: a version coming within T, a review, a
        posting, a reversal... becoming known at T;
      - the accounts with a tier interval ending in (T_prev, T] (a violation or report
        leaving its window);
    so model int_changed_entities lists the accounts and contents those records name, in
    any of their versions (old and new values alike: a superset is safe), and each of these
    models, on an incremental run, recomputes only them and replaces their rows (strategy
    replace_changed below, in the model's transaction).

    Each model keeps its own watermark in the source dbt_state.incremental_state (a
    post-hook, in the same transaction as its rows), read back through the view
    stg_dbt_state__incremental_state: the T and the last ingested file id it was built
    through, and a fingerprint of what else its rows depend on (the SQL of these models, the
    reporting time zone, the reference models of the policy and the categories). It is
    rebuilt in full, in place, when it has no watermark, when the fingerprint changed, when
    T moved back, or when a policy version took effect in (T_prev, T] (every account's
    windows change then). `ocse
    run --full-refresh` rebuilds everything. The test suite proves incremental equals full
    (tests/test_marts.py). -#}

{#- The models maintained this way; int_changed_entities covers the oldest watermark. -#}
{% macro changed_entity_models() -%}
    {{ return(['fct_content_takedowns', 'int_user_tier_intervals', 'fct_user_tier_history']) }}
{%- endmacro %}

{#- The reference models whose content the fingerprint covers (int_incremental_context). -#}
{% macro incremental_reference_models() -%}
    {{ return(['int_categories', 'int_policy_versions', 'int_policy_sla_targets', 'int_policy_tier_rules']) }}
{%- endmacro %}

{#- Watermarks of the given models: {name: {'as_of', 'through_file_id', 'fingerprint'}}. -#}
{% macro incremental_watermarks(names) -%}
    {%- set found = {} -%}
    {%- if load_relation(ref('int_incremental_context')) is none -%}
        {{ return(found) }}  {#- not built yet (a first build, or `dbt compile` on an empty warehouse) -#}
    {%- endif -%}
    {%- set rows = run_query(
        "select model, built_as_of::varchar as as_of, built_through_file_id, built_fingerprint, "
        ~ "is_policy_changed_since_built from " ~ ref('int_incremental_context')
        ~ " where built_as_of is not null and model in ('" ~ names | join("', '") ~ "')"
    ).rows -%}
    {%- for row in rows -%}
        {%- do found.update({row['model']: {
            'as_of': row['as_of'], 'through_file_id': row['built_through_file_id'],
            'fingerprint': row['built_fingerprint'],
            'policy_changed': row['is_policy_changed_since_built']}}) -%}
    {%- endfor -%}
    {{ return(found) }}
{%- endmacro %}

{#- What this model's rows depend on besides the feeds, as one digest (SQL expression): the
    SQL of every model maintained this way, of int_changed_entities and of
    int_takedown_versions (the takedown history they read; a change to one upstream would
    otherwise leave this one's unchanged entities as the old SQL made them),
    the reporting time zone and the reference models. -#}
{% macro incremental_fingerprint() -%}
    {%- set names = changed_entity_models() + ['int_changed_entities', 'int_takedown_versions'] -%}
    {%- set code = [] -%}
    {%- for node in (graph.nodes.values() if execute else []) | sort(attribute='unique_id') -%}
        {%- if node.resource_type == 'model' and node.name in names -%}
            {%- do code.append(node.raw_code) -%}
        {%- endif -%}
    {%- endfor -%}
    md5(concat_ws('|',
        '{{ local_md5(code | join("\n")) }}',
        '{{ var("reporting_tz") }}',
        (select reference_digest from {{ ref('int_incremental_context') }} limit 1)
    ))
{%- endmacro %}

{#- 'changes' when this run may recompute only the changed entities, else 'full' (always
    'full' in dbt's unit tests, which have no `this`). -#}
{% macro changes_mode() -%}
    {%- if not execute or this is none or not is_incremental() -%}
        {{ return('full') }}
    {%- endif -%}
    {%- set mark = incremental_watermarks([this.identifier]).get(this.identifier) -%}
    {%- if mark is none -%}
        {{ return('full') }}
    {%- endif -%}
    {%- set check = run_query(
        "select " ~ incremental_fingerprint() ~ " = '" ~ mark['fingerprint'] ~ "' as same_inputs, "
        ~ "'" ~ mark['as_of'] ~ "'::timestamptz <= " ~ as_of() ~ " as moves_forward"
    ).rows[0] -%}
    {%- if check['same_inputs'] and check['moves_forward'] and not mark['policy_changed'] -%}
        {{ return('changes') }}
    {%- endif -%}
    {{ return('full') }}
{%- endmacro %}

{#- A filter keeping only the changed entities of one kind ('account' or 'content') on an
    incremental run; nothing on a full build. Put it on every source of the model, so the
    work is done for them alone. `mode`: changes_mode(), computed once by the model. -#}
{% macro only_changed(kind, column, mode) -%}
    {%- if mode == 'changes' -%}
        {{ column }} in (
            select entity_key from {{ ref('int_changed_entities') }} where entity = '{{ kind }}'
        )
    {%- else -%}
        true
    {%- endif -%}
{%- endmacro %}

{#- The config of a model maintained this way: call it at the top of the model, with the
    kind of entity ('account' | 'content') and its column. -#}
{% macro incremental_by_entity(kind, column) -%}
    {#- the changed entities are read on incremental runs only (only_changed): referenced here
        unconditionally, so that dbt knows the dependency on every run -#}
    {%- do ref('int_changed_entities') -%}
    {%- do ref('int_incremental_context') -%}
    {#- on_schema_change: a model whose SQL changed is rebuilt in full (its fingerprint), so a
        column it gained is added, then filled by that rebuild: an upgrade needs no
        --full-refresh -#}
    {{ config(
        materialized='incremental',
        incremental_strategy='replace_changed',
        changed_entity=kind,
        unique_key=column,
        on_schema_change='append_new_columns',
        post_hook=["{{ record_incremental_state() }}"],
    ) }}
{%- endmacro %}

{#- Post-hook: record the T and the last file this model was built through. -#}
{% macro record_incremental_state() -%}
    {#- Written to, not read: the declared source's address from the graph, not source(),
        which would make the state an input of this model (it is read through the view
        stg_dbt_state__incremental_state) -#}
    {%- set state = graph.sources.get('source.ocse_warehouse.dbt_state.incremental_state') if execute else none -%}
    insert or replace into {{ api.Relation.create(database=state.database, schema=state.schema, identifier=state.identifier) if state else 'incremental_state' }}
    select
        '{{ this.identifier }}',
        {{ as_of() }},
        latest_file_id,
        {{ incremental_fingerprint() }}
    from {{ ref('int_incremental_context') }}
    where model = '{{ this.identifier }}'
{%- endmacro %}

{#- Incremental strategy `replace_changed`: delete the rows of every changed entity (all rows
    on a full rebuild), then insert the new ones. Unlike delete+insert it also removes an
    entity that has no rows any more (a takedown reversed on appeal). Config:
    changed_entity ('account' | 'content'), unique_key (its column). -#}
{% macro get_incremental_replace_changed_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    {%- set mode = changes_mode() -%}
    {%- do log(this.identifier ~ ': ' ~ ('replacing the rows of the changed ' ~ config.require('changed_entity')
        ~ 's only' if mode == 'changes' else 'rebuilt in full'), info=True) -%}
    {%- if mode == 'changes' %}
    delete from {{ target }} where {{ only_changed(config.require('changed_entity'), arg_dict['unique_key'], mode) }};
    {%- else %}
    delete from {{ target }};
    {%- endif %}
    insert into {{ target }} ({{ columns }})
    select {{ columns }} from {{ arg_dict['temp_relation'] }}
{%- endmacro %}
