{#- Where each model lands, written out rather than left to dbt's default so the
    layout is visible in the project: a model with no custom schema goes to the
    target schema; one with a custom schema (`+schema` in dbt_project.yml:
    staging, intermediate, marts, reference) goes to `<target schema>_<custom>`,
    e.g. analytics_marts for target schema analytics. This is the layout dbt's
    default builds too, so the names are what they always were; the Python side
    (gates, sync, report) reads the marts from `<target schema>_marts`. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- set default_schema = target.schema -%}
    {%- if custom_schema_name is none -%}
        {{ default_schema }}
    {%- else -%}
        {{ default_schema }}_{{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
