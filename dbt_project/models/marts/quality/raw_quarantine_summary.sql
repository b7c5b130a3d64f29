{#- How many raw rows each check rejected, per source table, for the run's
    as-of date: the number operators watch. -#}
with

quarantined as (

    select * from {{ ref('raw_quarantine') }}

),

final as (

    select
        as_of_date,
        source_table,
        quarantine_reason,
        count(*) as row_count
    from quarantined
    group by
        as_of_date,
        source_table,
        quarantine_reason

)

select * from final
