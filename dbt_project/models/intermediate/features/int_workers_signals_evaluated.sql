{#- One row per worker who exists as of the as-of date, with the underlying
    value of every worker readiness signal and whether it fired. Thresholds and
    windows are dbt vars (dbt_project.yml); windows are half-open and end at the
    as-of date.

    Earnings plateau: earnings_period_1 is the most recent complete period
    before the as-of date, earnings_period_2 the one before, and so on. With F
    flat periods and a ramp lookback of R periods, the plateau fires when each of
    periods 1..F earned no more than the period before it, and period F+1 (where
    the plateau began) earned more than zero and more than period F+1+R. -#}
{%- set period_days = var('worker_plateau_period_days') -%}
{%- set flat_periods = var('worker_plateau_flat_periods') -%}
{%- set ramp_lookback = var('worker_plateau_ramp_lookback_periods') -%}
{%- set period_count = flat_periods + ramp_lookback + 1 -%}
{%- set view_window = var('worker_view_spike_window_days') -%}

with

workers as (

    select user_id as worker_id
    from {{ ref('int_users_validated') }}
    where
        is_valid
        and role = 'worker'
        and created_at < {{ as_of_timestamp() }}

),

proposal_activity as (

    select
        worker_id,
        count(case when proposal_status in ('won', 'lost') then 1 end) as bid_to_win_decided_count,
        count(case when proposal_status = 'won' then 1 end) as bid_to_win_won_count
    from {{ ref('int_proposals_validated') }}
    where
        is_valid
        and {{ in_validated_window('submitted_at', var('worker_bid_to_win_window_days')) }}
    group by worker_id

),

view_activity as (

    select
        worker_id,
        count(case when {{ in_window('viewed_at', view_window) }} then 1 end) as view_spike_view_count,
        count(
            case when {{ in_window('viewed_at', view_window, end_days_ago=view_window) }} then 1 end
        ) as view_spike_prior_view_count
    from {{ ref('int_profile_views_validated') }}
    where
        is_valid
        and {{ in_validated_window('viewed_at', 2 * view_window) }}
    group by worker_id

),

contact_activity as (

    select
        worker_id,
        count(*) as view_spike_contact_count
    from {{ ref('int_contacts_validated') }}
    where
        is_valid
        and {{ in_validated_window('contacted_at', view_window) }}
    group by worker_id

),

earnings as (

    select
        worker_id,
        {% for period in range(1, period_count + 1) -%}
        sum(
            case
                when {{ in_window('booked_at', period_days, end_days_ago=period_days * (period - 1)) }} then amount
            end
        ) as earnings_period_{{ period }},
        {% endfor -%}
        count(*) as completed_booking_count
    from {{ ref('int_bookings_validated') }}
    where
        is_valid
        and booking_status = 'completed'
        and {{ in_validated_window('booked_at', period_days * period_count) }}
    group by worker_id

),

measured as (

    select
        workers.worker_id,
        coalesce(proposal_activity.bid_to_win_decided_count, 0) as bid_to_win_decided_count,
        coalesce(proposal_activity.bid_to_win_won_count, 0) as bid_to_win_won_count,
        coalesce(view_activity.view_spike_view_count, 0) as view_spike_view_count,
        coalesce(view_activity.view_spike_prior_view_count, 0) as view_spike_prior_view_count,
        {% for period in range(1, period_count + 1) -%}
        coalesce(earnings.earnings_period_{{ period }}, 0) as earnings_period_{{ period }},
        {% endfor -%}
        coalesce(contact_activity.view_spike_contact_count, 0) as view_spike_contact_count
    from workers
    left join proposal_activity
        on workers.worker_id = proposal_activity.worker_id
    left join view_activity
        on workers.worker_id = view_activity.worker_id
    left join contact_activity
        on workers.worker_id = contact_activity.worker_id
    left join earnings
        on workers.worker_id = earnings.worker_id

),

final as (

    select
        worker_id,
        {{ as_of_date_literal() }} as as_of_date,
        bid_to_win_decided_count,
        bid_to_win_won_count,
        case
            when bid_to_win_decided_count > 0
                then cast(bid_to_win_won_count as {{ type_decimal() }}) / bid_to_win_decided_count
        end as bid_to_win_win_rate,
        view_spike_view_count,
        view_spike_prior_view_count,
        view_spike_contact_count,
        case
            when view_spike_view_count > 0
                then cast(view_spike_contact_count as {{ type_decimal() }}) / view_spike_view_count
        end as view_spike_contact_rate,
        {%- for period in range(1, period_count + 1) %}
        earnings_period_{{ period }},
        {%- endfor %}
        (
            bid_to_win_decided_count >= {{ var('worker_bid_to_win_min_decided_proposals') }}
            and cast(bid_to_win_won_count as {{ type_decimal() }}) / nullif(bid_to_win_decided_count, 0)
            < {{ var('worker_bid_to_win_max_win_rate') }}
        ) as has_bid_to_win_signal,
        (
            view_spike_view_count >= {{ var('worker_view_spike_min_views') }}
            and view_spike_view_count >= {{ var('worker_view_spike_min_growth_factor') }} * view_spike_prior_view_count
            and cast(view_spike_contact_count as {{ type_decimal() }}) / nullif(view_spike_view_count, 0)
            < {{ var('worker_view_spike_max_contact_rate') }}
        ) as has_profile_view_spike_signal,
        (
            {%- for period in range(1, flat_periods + 1) %}
            earnings_period_{{ period }} <= earnings_period_{{ period + 1 }}
            and
            {%- endfor %}
            earnings_period_{{ flat_periods + 1 }} > 0
            and earnings_period_{{ flat_periods + 1 }} > earnings_period_{{ flat_periods + 1 + ramp_lookback }}
        ) as has_earnings_plateau_signal
    from measured

)

select * from final
