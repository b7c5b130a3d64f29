{#- One row per user per readiness signal for the as-of date: whether it fired,
    its weight (var readiness_signal_weights), its underlying values and a
    sentence a growth manager can read. readiness_history sums these. -#}
with

clients as (

    select * from {{ ref('int_clients_signals_evaluated') }}

),

workers as (

    select * from {{ ref('int_workers_signals_evaluated') }}

),

client_signals as (

    select
        client_id as user_id,
        'client' as role,
        'spend_frequency' as signal_name,
        has_spend_frequency_signal as is_fired,
        {{ signal_weight('client', 'spend_frequency') }} as signal_weight,
        {{ json_object({
            'completed_bookings': 'spend_frequency_booking_count',
            'window_days': var('client_spend_frequency_window_days'),
        }) }} as signal_values,
        concat(
            spend_frequency_booking_count, ' completed bookings in the last ',
            {{ var('client_spend_frequency_window_days') }}, ' days'
        ) as signal_summary
    from clients

    union all

    select
        client_id as user_id,
        'client' as role,
        'category_breadth' as signal_name,
        has_category_breadth_signal as is_fired,
        {{ signal_weight('client', 'category_breadth') }} as signal_weight,
        {{ json_object({
            'categories': 'category_breadth_category_count',
            'window_days': var('client_category_breadth_window_days'),
        }) }} as signal_values,
        concat(
            'hired in ', category_breadth_category_count, ' categories in the last ',
            {{ var('client_category_breadth_window_days') }}, ' days'
        ) as signal_summary
    from clients

    union all

    select
        client_id as user_id,
        'client' as role,
        'repeat_hire' as signal_name,
        has_repeat_hire_signal as is_fired,
        {{ signal_weight('client', 'repeat_hire') }} as signal_weight,
        {{ json_object({
            'bookings_with_same_worker': 'repeat_hire_booking_count',
            'worker_id': 'repeat_hire_worker_id',
            'window_days': var('client_repeat_hire_window_days'),
        }) }} as signal_values,
        concat(
            'booked the same worker ', repeat_hire_booking_count, ' times in the last ',
            {{ var('client_repeat_hire_window_days') }}, ' days'
        ) as signal_summary
    from clients

    union all

    select
        client_id as user_id,
        'client' as role,
        'search_friction' as signal_name,
        has_search_friction_signal as is_fired,
        {{ signal_weight('client', 'search_friction') }} as signal_weight,
        {{ json_object({
            'searches': 'search_friction_search_count',
            'hires': 'search_friction_hire_count',
            'hire_rate': 'round(search_friction_hire_rate, 4)',
            'window_days': var('client_search_friction_window_days'),
        }) }} as signal_values,
        concat(
            search_friction_search_count, ' searches but ', search_friction_hire_count, ' hires in the last ',
            {{ var('client_search_friction_window_days') }}, ' days'
        ) as signal_summary
    from clients

),

worker_signals as (

    select
        worker_id as user_id,
        'worker' as role,
        'bid_to_win' as signal_name,
        has_bid_to_win_signal as is_fired,
        {{ signal_weight('worker', 'bid_to_win') }} as signal_weight,
        {{ json_object({
            'proposals_won': 'bid_to_win_won_count',
            'proposals_decided': 'bid_to_win_decided_count',
            'win_rate': 'round(bid_to_win_win_rate, 4)',
            'window_days': var('worker_bid_to_win_window_days'),
        }) }} as signal_values,
        concat(
            'won ', bid_to_win_won_count, ' of ', bid_to_win_decided_count, ' decided proposals in the last ',
            {{ var('worker_bid_to_win_window_days') }}, ' days'
        ) as signal_summary
    from workers

    union all

    select
        worker_id as user_id,
        'worker' as role,
        'profile_view_spike' as signal_name,
        has_profile_view_spike_signal as is_fired,
        {{ signal_weight('worker', 'profile_view_spike') }} as signal_weight,
        {{ json_object({
            'profile_views': 'view_spike_view_count',
            'prior_profile_views': 'view_spike_prior_view_count',
            'contacts': 'view_spike_contact_count',
            'contact_rate': 'round(view_spike_contact_rate, 4)',
            'window_days': var('worker_view_spike_window_days'),
        }) }} as signal_values,
        concat(
            view_spike_view_count, ' profile views (', view_spike_prior_view_count, ' the period before) but ',
            view_spike_contact_count, ' contacts in the last ', {{ var('worker_view_spike_window_days') }}, ' days'
        ) as signal_summary
    from workers

    union all

    select
        worker_id as user_id,
        'worker' as role,
        'earnings_plateau' as signal_name,
        has_earnings_plateau_signal as is_fired,
        {{ signal_weight('worker', 'earnings_plateau') }} as signal_weight,
        {%- set period_count = var('worker_plateau_flat_periods') + var('worker_plateau_ramp_lookback_periods') + 1 %}
        {%- set periods = [] %}
        {%- for period in range(period_count, 0, -1) %}{% do periods.append('earnings_period_' ~ period) %}{% endfor %}
        {{ json_object({
            'period_days': var('worker_plateau_period_days'),
            'earnings_by_period': json_array(periods),
        }, json_keys=['earnings_by_period']) }} as signal_values,
        concat(
            'earnings flat for ', {{ var('worker_plateau_flat_periods') }}, ' periods of ',
            {{ var('worker_plateau_period_days') }}, ' days after a ramp'
        ) as signal_summary
    from workers

),

unioned as (

    select * from client_signals
    union all
    select * from worker_signals

),

final as (

    select
        {{ as_of_date_literal() }} as as_of_date,
        user_id,
        role,
        signal_name,
        is_fired,
        signal_weight,
        signal_values,
        signal_summary
    from unioned

)

select * from final
