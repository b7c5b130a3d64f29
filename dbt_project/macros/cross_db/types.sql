{#- Engine differences the dbt cross-database macros do not cover: one
    postgres__ and one spark__ implementation each, picked by adapter.dispatch.
    Models call the macro instead of writing either engine's syntax. -#}

{#- An instant in time (UTC in every session the project opens): PostgreSQL's
    timestamptz, Spark's timestamp (which is an instant; timestamp_ntz is not). -#}
{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz', 'upshift')()) }}
{%- endmacro %}

{% macro postgres__type_timestamptz() -%}
    {{ return('timestamp with time zone') }}
{%- endmacro %}

{% macro spark__type_timestamptz() -%}
    {{ return('timestamp') }}
{%- endmacro %}

{#- Seconds from `start` to `end` (two instants), as a fractional number. -#}
{% macro seconds_between(start, end) -%}
    {{ return(adapter.dispatch('seconds_between', 'upshift')(start, end)) }}
{%- endmacro %}

{% macro postgres__seconds_between(start, end) -%}
    extract(epoch from {{ end }} - {{ start }})
{%- endmacro %}

{% macro spark__seconds_between(start, end) -%}
    ((unix_micros({{ end }}) - unix_micros({{ start }})) / 1000000.0)
{%- endmacro %}

{#- True when the amount is NaN or +/-infinity. PostgreSQL's numeric holds them;
    Spark's decimal cannot, so on Spark only a floating-point column can. -#}
{% macro is_non_finite(column) -%}
    {{ return(adapter.dispatch('is_non_finite', 'upshift')(column)) }}
{%- endmacro %}

{% macro postgres__is_non_finite(column) -%}
    {{ column }} in (cast('NaN' as numeric), cast('Infinity' as numeric), cast('-Infinity' as numeric))
{%- endmacro %}

{% macro spark__is_non_finite(column) -%}
    coalesce(isnan(cast({{ column }} as double)) or abs(cast({{ column }} as double)) = double('infinity'), false)
{%- endmacro %}

{#- Statistics for the planner right after a table is built (a post-hook):
    PostgreSQL's fresh tables have none until autovacuum runs. Spark plans from
    file sizes; no statement. -#}
{% macro analyze_relation(relation) -%}
    {{ return(adapter.dispatch('analyze_relation', 'upshift')(relation)) }}
{%- endmacro %}

{% macro postgres__analyze_relation(relation) -%}
    analyze {{ relation }}
{%- endmacro %}

{% macro spark__analyze_relation(relation) -%}
{%- endmacro %}

{#- The config of a model kept one partition per value of `column` (reruns replace
    the partitions they rebuild): delete+insert by that column on PostgreSQL; on
    Spark without Delta, an insert_overwrite of the column's partitions. The one
    place the per-engine incremental strategy is chosen. -#}
{% macro partition_incremental_config(column) -%}
    {{ return(adapter.dispatch('partition_incremental_config', 'upshift')(column)) }}
{%- endmacro %}

{% macro postgres__partition_incremental_config(column) -%}
    {{ return({'incremental_strategy': 'delete+insert', 'unique_key': [column]}) }}
{%- endmacro %}

{% macro spark__partition_incremental_config(column) -%}
    {{ return({'incremental_strategy': 'insert_overwrite', 'partition_by': [column], 'file_format': 'parquet'}) }}
{%- endmacro %}

{#- A model rebuilt per as-of date (the readiness histories, growth_headlines). -#}
{% macro as_of_incremental_config() -%}
    {{ return(partition_incremental_config('as_of_date')) }}
{%- endmacro %}

{#- A model that appends and, before each run, deletes its rows from the rebuild
    start on (readiness_triggers, macros/validation_batch.sql). Spark tables without
    Delta cannot delete rows, so there the model is rebuilt whole each run. -#}
{% macro rebuild_from_incremental_config(timestamp_column) -%}
    {{ return(adapter.dispatch('rebuild_from_incremental_config', 'upshift')(timestamp_column)) }}
{%- endmacro %}

{% macro postgres__rebuild_from_incremental_config(timestamp_column) -%}
    {{ return({
        'materialized': 'incremental',
        'pre_hook': "{{ delete_from_rebuild_start('" ~ timestamp_column ~ "') }}",
    }) }}
{%- endmacro %}

{% macro spark__rebuild_from_incremental_config(timestamp_column) -%}
    {{ return({'materialized': 'table', 'file_format': 'parquet'}) }}
{%- endmacro %}

{#- The holdout bucket: the first 32 bits of md5(salt|id), masked to 31 bits,
    mod 10000 (the same number as default__holdout_bucket computes). -#}
{% macro spark__holdout_bucket(user_id) -%}
    pmod(
        cast(conv(substr(md5(concat('{{ var("holdout_salt") }}', '|', {{ user_id }})), 1, 8), 16, 10) as bigint)
        & 2147483647,
        10000
    )
{%- endmacro %}

{#- An interval of `days` days, for window frames (range between ... preceding). -#}
{% macro interval_days(days) -%}
    {{ return(adapter.dispatch('interval_days', 'upshift')(days)) }}
{%- endmacro %}

{% macro postgres__interval_days(days) -%}
    interval '{{ days }} days'
{%- endmacro %}

{% macro spark__interval_days(days) -%}
    interval {{ days }} days
{%- endmacro %}

{#- A from-clause item joining one row per month start from `first_month` to
    `last_month` (dates, both included) as `alias`.`column`. -#}
{% macro join_month_series(first_month, last_month, alias, column) -%}
    {{ return(adapter.dispatch('join_month_series', 'upshift')(first_month, last_month, alias, column)) }}
{%- endmacro %}

{% macro postgres__join_month_series(first_month, last_month, alias, column) -%}
    cross join lateral generate_series(
        cast({{ first_month }} as timestamp), cast({{ last_month }} as timestamp), interval '1 month'
    ) as {{ alias }} ({{ column }})
{%- endmacro %}

{% macro spark__join_month_series(first_month, last_month, alias, column) -%}
    lateral view explode(sequence(cast({{ first_month }} as date), cast({{ last_month }} as date), interval 1 month))
        {{ alias }} as {{ column }}
{%- endmacro %}

{#- An exact number with a fractional part, for rates and rounded figures:
    PostgreSQL's unbounded numeric. Spark's bare `numeric` is decimal(10,0), which
    would cut every fraction, so Spark gets a scale of 9. -#}
{% macro type_decimal() -%}
    {{ return(adapter.dispatch('type_decimal', 'upshift')()) }}
{%- endmacro %}

{% macro postgres__type_decimal() -%}
    {{ return('numeric') }}
{%- endmacro %}

{% macro spark__type_decimal() -%}
    {{ return('decimal(38, 9)') }}
{%- endmacro %}
