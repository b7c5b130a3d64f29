{#- Upsell conversion per trigger type x offer x channel, treatment against the
    holdout, from the measurable triggers of trigger_conversions
    (a trigger counts once it is metrics_conversion_window_days old; a user
    converted when an upgrade followed within that window). The channel is the
    first channel the user was shown an offer on within the window; `none` when
    no exposure came back, `holdout` for held-out users. Counts are distinct
    users per row; a user reached on two channels is in both rows, so the rows
    do not add up to users per arm (upsell_lift counts those). -#}
with

observed as (

    select * from {{ ref('trigger_conversions') }}

),

final as (

    select
        {{ as_of_date_literal() }} as as_of_date,
        trigger_type,
        offer_code,
        channel,
        arm,
        count(distinct user_id) as users_triggered,
        count(distinct case when has_converted then user_id end) as users_converted,
        round(
            100.0 * count(distinct case when has_converted then user_id end) / count(distinct user_id), 2
        ) as conversion_rate_pct
    from observed
    group by
        trigger_type,
        offer_code,
        channel,
        arm

)

select * from final
