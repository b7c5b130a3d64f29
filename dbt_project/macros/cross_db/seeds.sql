{#- dbt-spark's session method loads seed rows with bindings it does not escape,
    so a value holding a quote (an offer summary: "the client's own ...") breaks
    the insert. On Spark the rows go in as escaped literals instead (the seeds
    are small; one statement). -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set sql -%}
        insert into {{ this.render() }} values
        {% for row in agate_table.rows -%}
            (
            {%- for col_name in agate_table.column_names -%}
                {%- set type = column_override.get(col_name, adapter.convert_type(agate_table, loop.index0)) -%}
                {%- set value = row[loop.index0] -%}
                cast({% if value is none %}null{% else %}'{{ value | string | replace("\\", "\\\\") | replace("'", "\\'") }}'{% endif %} as {{ type }})
                {%- if not loop.last %}, {% endif -%}
            {%- endfor -%}
            ){{ ',' if not loop.last }}
        {% endfor -%}
    {%- endset -%}
    {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
    {{ return(sql) }}
{% endmacro %}
