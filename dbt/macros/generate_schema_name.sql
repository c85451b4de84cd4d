{#- Models land in exactly the schema their folder names (staging, marts), not
    <target>_<schema>: marts.* is the warehouse's public interface. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
