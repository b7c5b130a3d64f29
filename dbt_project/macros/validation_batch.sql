{#- The validation batch: the raw event rows one incremental run re-validates.

    The event tables' validation models (int_<table>s_validated) are incremental by
    the event's UTC date, `partition_date`. A run as of D re-reads the raw rows of
    the last var('validation_lookback_days') days before D and everything later
    (rows past D are future_timestamp until D catches up with them), plus the rows
    no date window can place: a missing or implausible timestamp. It replaces
    exactly those partitions (the incremental strategy is set once, in
    dbt_project.yml) and leaves older ones as they were, so a rerun of D gives the
    same tables and a day's run reads a few days, not all of history.

    A raw row arriving more than the lookback late is not picked up by daily runs;
    `dbt build --full-refresh` re-validates all of history. -#}

{#- First day of the batch (YYYY-MM-DD): lookback days before the as-of date. Worked
    out here, not in SQL, so no session time zone can move it. -#}
{% macro validation_batch_start_date() -%}
    {{- return(iso_days_before(as_of_date(), var('validation_lookback_days'))) -}}
{%- endmacro %}

{#- First instant of the batch: midnight UTC of its first day. -#}
{% macro validation_batch_start() -%}
    cast('{{ validation_batch_start_date() }} 00:00:00+00' as {{ type_timestamptz() }})
{%- endmacro %}

{% macro earliest_event_timestamp() -%}
    cast('{{ var("quarantine_earliest_event_date") }} 00:00:00+00' as {{ type_timestamptz() }})
{%- endmacro %}

{#- True for a raw row of the batch, by its event timestamp (index-friendly: three
    ranges of the raw column). -#}
{% macro in_validation_batch(timestamp_column) -%}
    ({{ timestamp_column }} >= {{ validation_batch_start() }}
    or {{ timestamp_column }} is null
    or {{ timestamp_column }} < {{ earliest_event_timestamp() }})
{%- endmacro %}

{#- The partition a row is filed under: the UTC date of its event timestamp, or
    0001-01-01 when the timestamp is missing (a partition, so reruns replace it). -#}
{% macro validation_partition_date(timestamp_column) -%}
    {{ return(adapter.dispatch('validation_partition_date', 'upshift')(timestamp_column)) }}
{%- endmacro %}

{% macro default__validation_partition_date(timestamp_column) -%}
    coalesce(cast(timezone('UTC', {{ timestamp_column }}) as date), cast('0001-01-01' as date))
{%- endmacro %}

{#- Spark's session time zone is UTC (profiles.yml), so a plain cast is the UTC date. -#}
{% macro spark__validation_partition_date(timestamp_column) -%}
    coalesce(cast({{ timestamp_column }} as date), cast('0001-01-01' as date))
{%- endmacro %}

{#- True for a partition the batch replaces (the same rows in_validation_batch reads). -#}
{% macro in_validation_batch_partition(partition_column='partition_date') -%}
    ({{ partition_column }} >= cast('{{ validation_batch_start_date() }}' as date)
    or {{ partition_column }} < cast('{{ var("quarantine_earliest_event_date") }}' as date))
{%- endmacro %}

{#- True for a partition an incremental run keeps as it is: the earlier copies a
    batch row's id is checked against. -#}
{% macro before_validation_batch(partition_column) -%}
    ({{ partition_column }} >= cast('{{ var("quarantine_earliest_event_date") }}' as date)
    and {{ partition_column }} < cast('{{ validation_batch_start_date() }}' as date))
{%- endmacro %}

{#- Data test: `column_name` is unique among the valid rows of the batch's partitions,
    and none of them repeats the id of a valid row in an earlier partition. Earlier
    partitions were tested by the runs that built them, so this covers what the full
    `unique` test covers while reading only the batch (plus an index lookup per row). -#}
{% test unique_in_validation_batch(model, column_name) %}

with

batch as (

    select {{ column_name }} as id
    from {{ model }}
    where is_valid
        and {{ in_validation_batch_partition() }}

),

repeated_in_batch as (

    select id
    from batch
    group by id
    having count(*) > 1

),

{#- The probe sits in the select list, as in deduplicated_validation_batch: a `where
    exists` becomes a semi-join, which PostgreSQL runs as a hash of every earlier
    partition (all of history) when the batch is large; here it stays one id-index
    lookup per batch row. -#}
probed as (

    select
        batch.id,
        exists (
            select 1
            from {{ model }} as earlier
            where earlier.{{ column_name }} = batch.id
                and earlier.is_valid
                and {{ before_validation_batch('earlier.partition_date') }}
        ) as is_repeated_from_earlier
    from batch

)

select id from repeated_in_batch
union all
select id from probed
where is_repeated_from_earlier

{% endtest %}

{#- Data tests' `where` config cannot call project macros, so it names the batch with
    placeholders this override of dbt's get_where_subquery fills in:
      __validation_batch(<raw timestamp column>)__   the batch's raw rows (sources, staging)
      __validation_batch_partition__                 the batch's partitions (validation models) -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where') -%}
    {%- if not where -%}
        {{ return(relation) }}
    {%- endif -%}
    {%- set rendered = namespace(where=where | replace('__validation_batch_partition__', in_validation_batch_partition())) -%}
    {%- for column in modules.re.findall('__validation_batch\\((\\w+)\\)__', where) -%}
        {%- set rendered.where = rendered.where | replace('__validation_batch(' ~ column ~ ')__', in_validation_batch(column)) -%}
    {%- endfor -%}
    {%- set filtered -%}
        (select * from {{ relation }} where {{ rendered.where }}) dbt_subquery
    {%- endset -%}
    {{ return(filtered) }}
{%- endmacro %}

{#- First instant (YYYY-MM-DD, midnight UTC) an incremental run of `relation` rebuilds:
    the validation batch's first day, or, when `relation` holds nothing at or after the
    day before it (the last run was a backfill of an earlier date), the day of its
    newest `timestamp_column`, so moving forward again rebuilds the days in between.
    Read once at compile time, so a pre-hook and the model's SQL agree on it. -#}
{% macro incremental_rebuild_start_date(relation, timestamp_column) -%}
    {%- set start = validation_batch_start_date() -%}
    {%- if not execute or not is_incremental() -%}
        {{ return(start) }}
    {%- endif -%}
    {%- set newest -%}
        select cast(timezone('UTC', max({{ timestamp_column }})) as date) from {{ relation }}
    {%- endset -%}
    {%- set newest_date = run_query(newest).columns[0].values()[0] -%}
    {%- if newest_date is not none and newest_date.isoformat() < start -%}
        {{ return(newest_date.isoformat()) }}
    {%- endif -%}
    {{ return(start) }}
{%- endmacro %}

{#- Pre-hook of an incremental model rebuilt from incremental_rebuild_start_date on:
    deletes its rows from that day on (nothing on a full build). -#}
{% macro delete_from_rebuild_start(timestamp_column) -%}
    {%- if is_incremental() -%}
        delete from {{ this }}
        where {{ timestamp_column }} >= cast('{{ incremental_rebuild_start_date(this, timestamp_column) }} 00:00:00+00' as {{ type_timestamptz() }})
    {%- endif -%}
{%- endmacro %}

{#- An event table's staged rows for this run, each with `is_duplicate`: true for a
    later copy of an id, whether the earlier copy is in the batch (a window over the
    batch only, copies in copy_number's order: event time, then the row's other
    columns, so the kept copy does not depend on scan order) or in a partition an earlier run kept
    (an `exists` probe of the id index). A full build reads every staged row; an
    incremental run reads the validation batch. -#}
{% macro deduplicated_validation_batch(staging_relation, id_column, timestamp_column, row_columns) -%}
    select
        ranked.*,
        ranked.{{ id_column }} is not null and (
            ranked.copy_number > 1
            {%- if is_incremental() %}
            or exists (
                select 1
                from {{ this }} as kept
                where kept.{{ id_column }} = ranked.{{ id_column }}
                    and {{ before_validation_batch('kept.partition_date') }}
            )
            {%- endif %}
        ) as is_duplicate
    from (
        select
            staged.*,
            {{ copy_number(id_column, timestamp_column, row_columns, 'staged') }} as copy_number
        from {{ staging_relation }} as staged
        {%- if is_incremental() %}
        where {{ in_validation_batch('staged.' ~ timestamp_column) }}
        {%- endif %}
    ) as ranked
{%- endmacro %}

{#- quarantine_reason and quarantine_detail of a validated event row, in one order
    for every event table: a missing or blank key first (staging's), then the
    duplicate check, then the rest of staging's checks, then the model's reference
    checks, each a (condition, detail) pair whose reason is unknown_user. Reads the
    `deduplicated` CTE of deduplicated_validation_batch. -#}
{% macro validation_quarantine(duplicate_detail, reference_checks) -%}
    case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_reason
            when deduplicated.is_duplicate then 'duplicate_id'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_reason
            {%- for condition, detail in reference_checks %}
            when {{ condition }} then 'unknown_user'
            {%- endfor %}
        end as quarantine_reason,
        case
            when deduplicated.quarantine_reason in ('null_key', 'blank_key') then deduplicated.quarantine_detail
            when deduplicated.is_duplicate then '{{ duplicate_detail }}'
            when deduplicated.quarantine_reason is not null then deduplicated.quarantine_detail
            {%- for condition, detail in reference_checks %}
            when {{ condition }} then '{{ detail }}'
            {%- endfor %}
        end as quarantine_detail
{%- endmacro %}
