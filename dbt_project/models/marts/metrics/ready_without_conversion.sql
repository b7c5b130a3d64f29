{#- Users sitting at the Ready score or above for
    metrics_ready_without_conversion_days days or more without converting, as of
    the as-of date (the streak in readiness_history restarts at an upgrade).
    The guide's warning: when this list grows, the offer or the channel mix is
    wrong. -#}
with

history as (

    select * from {{ ref('readiness_history') }}
    where as_of_date = {{ as_of_date_literal() }}

),

final as (

    select
        as_of_date,
        user_id,
        role,
        readiness_tier,
        readiness_score,
        ready_streak_started_on,
        days_at_ready
    from history
    where days_at_ready >= {{ var('metrics_ready_without_conversion_days') }}

)

select * from final
