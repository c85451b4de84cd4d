{#- The run's as-of time T as a TIMESTAMPTZ literal. Only facts known by T count.
    `ocse run` passes T in the environment (OCSE_DBT_AS_OF), not in --vars: dbt re-parses the
    whole project whenever --vars change, and T changes on every run. -#}
{% macro as_of() -%}
    {%- set value = env_var('OCSE_DBT_AS_OF', '') or var('as_of', none)
        or run_started_at.isoformat() -%}
    '{{ value }}'::timestamptz
{%- endmacro %}
