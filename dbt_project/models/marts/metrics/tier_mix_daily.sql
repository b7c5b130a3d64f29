{#- Users per side and tier on every as-of date in the history up to the run's:
    the tier mix over time the weekly growth review charts. -#}
with

history as (

    select * from {{ ref('readiness_history') }}
    where as_of_date <= {{ as_of_date_literal() }}

),

final as (

    select
        as_of_date,
        role,
        readiness_tier,
        count(*) as user_count
    from history
    group by
        as_of_date,
        role,
        readiness_tier

)

select * from final
