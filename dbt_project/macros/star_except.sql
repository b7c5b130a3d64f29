{#- Columns of `relation`, minus `except`, qualified with `alias`: a model that
    carries another model's columns (user_readiness carries every signal's
    values) without naming each one twice. -#}
{% macro star_except(relation, alias, except) -%}
    {%- if not execute -%}
        {{ return(alias ~ '.*') }}
    {%- endif -%}
    {%- set names = [] -%}
    {%- for column in adapter.get_columns_in_relation(relation) -%}
        {%- if column.name | lower not in except -%}
            {%- do names.append(alias ~ '.' ~ adapter.quote(column.name)) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(names | join(',\n        ')) }}
{%- endmacro %}
