{#- The run's as-of time T as a TIMESTAMPTZ literal. Only facts known by T count.
    `ocse run` passes T in the environment (OCSE_DBT_AS_OF), not in --vars: dbt re-parses the
    whole project whenever --vars change, and T changes on every run. It is read only when
    SQL is compiled (`execute`), never while parsing: an environment variable read during
    parsing is recorded, and a new value would make dbt re-parse every model calling this.
    Models and test arguments are compiled at run time, so they always get this run's T. -#}
{% macro as_of() -%}
    {%- if execute -%}
        {%- set value = env_var('OCSE_DBT_AS_OF', '') or var('as_of', none)
            or run_started_at.isoformat() -%}
    {%- else -%}
        {%- set value = '1970-01-01T00:00:00+00:00' -%}
    {%- endif -%}
    '{{ value }}'::timestamptz
{%- endmacro %}
