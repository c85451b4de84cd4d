{#- The run's as-of time T as a TIMESTAMPTZ literal. Only facts known by T count. -#}
{% macro as_of() -%}
    {%- set value = var('as_of', none) or run_started_at.isoformat() -%}
    '{{ value }}'::timestamptz
{%- endmacro %}
