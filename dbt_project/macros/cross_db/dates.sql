{#- dbt-spark's dateadd and datediff wrap their arguments in assert_not_null,
    which fails the whole query on one null (a user without a Ready streak, a
    first booking without a previous one) where PostgreSQL returns null. These
    null-safe versions take their place on Spark (dispatch search order in
    dbt_project.yml); PostgreSQL keeps dbt's own. -#}

{% macro spark__dateadd(datepart, interval, from_date_or_timestamp) -%}
    timestampadd({{ datepart }}, {{ interval }}, cast({{ from_date_or_timestamp }} as timestamp))
{%- endmacro %}

{% macro spark__datediff(first_date, second_date, datepart) -%}
    {%- if datepart == 'day' -%}
        datediff(cast({{ second_date }} as date), cast({{ first_date }} as date))
    {%- elif datepart in ('hour', 'minute', 'second') -%}
        timestampdiff({{ datepart }}, cast({{ first_date }} as timestamp), cast({{ second_date }} as timestamp))
    {%- else -%}
        {{ exceptions.raise_compiler_error("datediff by " ~ datepart ~ " has no null-safe Spark version here") }}
    {%- endif -%}
{%- endmacro %}
