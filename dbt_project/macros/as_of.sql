{#- The as-of date every model computes for. Events strictly before its midnight
    (UTC) are in scope; "last N days" windows are half-open and end there. -#}
{% macro as_of_date() -%}
    {%- set configured = var('as_of_date', '') -%}
    {%- set source = "var('as_of_date')" -%}
    {#- The orchestrator's date (the DAG's): read only when executing, so parsing never
        records it and dbt's partial parse survives a new date (a changed --vars does not). -#}
    {%- if configured in (none, '') and execute -%}
        {%- set configured = env_var('UPSHIFT_AS_OF_DATE', '') -%}
        {%- set source = 'UPSHIFT_AS_OF_DATE' -%}
    {%- endif -%}
    {%- if configured in (none, '') -%}
        {{- return(run_started_at.strftime('%Y-%m-%d')) -}}
    {%- endif -%}
    {%- set text = configured | string -%}
    {%- if not is_calendar_date(text) -%}
        {{ exceptions.raise_compiler_error(source ~ " must be a date as YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
    {{- return(text) -}}
{%- endmacro %}

{% macro as_of_date_literal() -%}
    cast('{{ as_of_date() }}' as date)
{%- endmacro %}

{% macro as_of_timestamp() -%}
    cast('{{ as_of_date() }} 00:00:00+00' as {{ type_timestamptz() }})
{%- endmacro %}

{#- Start of the window that ends `end_days_ago` days before the as-of date and
    spans `days` days. -#}
{% macro window_start(days, end_days_ago=0) -%}
    {{ dbt.dateadd('day', -1 * (days + end_days_ago), as_of_timestamp()) }}
{%- endmacro %}

{#- True when `column` lies in the half-open window
    [as_of - (days + end_days_ago), as_of - end_days_ago). -#}
{% macro in_window(column, days, end_days_ago=0) -%}
    ({{ column }} >= {{ window_start(days, end_days_ago) }}
    and {{ column }} < {{ window_start(0, end_days_ago) }})
{%- endmacro %}

{#- The ISO date `days` days before the ISO date `date_text` (worked out here, not in
    SQL, so no session time zone can move it). -#}
{% macro iso_days_before(date_text, days) -%}
    {%- set start = modules.datetime.date.fromisoformat(date_text) - modules.datetime.timedelta(days=days) -%}
    {{- return(start.isoformat()) -}}
{%- endmacro %}

{#- in_window on a validated event table (int_<table>s_validated): the same rows, and
    the same window on their `partition_date` (the event's UTC date, macros/
    validation_batch.sql), which the condition on the timestamp implies. That bound is
    what lets the planner read the window through the partition_date index (Spark: prune
    the partitions) instead of scanning all of history, so a day's run stays the size of
    its windows whatever the history. -#}
{% macro in_validated_window(column, days, end_days_ago=0, partition_column='partition_date') -%}
    ({{ in_window(column, days, end_days_ago) }}
    and {{ partition_column }} >= cast('{{ iso_days_before(as_of_date(), days + end_days_ago) }}' as date)
    and {{ partition_column }} < cast('{{ iso_days_before(as_of_date(), end_days_ago) }}' as date))
{%- endmacro %}
