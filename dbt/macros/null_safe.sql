{#- `a is distinct from b` (null-safe inequality), spelled so that sqlfluff's DuckDB dialect
    parses it (it does not know IS DISTINCT FROM): different values, or exactly one null. -#}
{% macro distinct_from(a, b) -%}
    coalesce({{ a }} <> {{ b }}, ({{ a }} is null) <> ({{ b }} is null))
{%- endmacro %}
