{#- Configuration checks, run at the start of every dbt invocation (on-run-start in
    dbt_project.yml) so a bad var fails the run before any model is built, with a
    message naming the var. Each check reads the var the models read. -#}

{% macro validate_vars() -%}
    {%- set positive_whole = [
        'client_spend_frequency_window_days', 'client_spend_frequency_min_bookings',
        'client_category_breadth_window_days', 'client_category_breadth_min_categories',
        'client_repeat_hire_window_days', 'client_repeat_hire_min_bookings_same_worker',
        'client_search_friction_window_days', 'client_search_friction_min_searches',
        'worker_bid_to_win_window_days', 'worker_bid_to_win_min_decided_proposals',
        'worker_view_spike_window_days', 'worker_view_spike_min_views',
        'worker_plateau_period_days', 'worker_plateau_flat_periods', 'worker_plateau_ramp_lookback_periods',
        'tier_overdue_after_days_at_ready', 'trigger_repeat_booking_within_days', 'touchpoint_horizon_days',
        'touchpoint_cap_per_user', 'touchpoint_cap_window_days',
        'metrics_conversion_window_days', 'metrics_time_to_upgrade_target_days',
        'metrics_ready_without_conversion_days', 'metrics_retention_days',
        'benchmark_window_days', 'benchmark_search_to_hire_max_days', 'validation_lookback_days',
    ] -%}
    {%- for name in positive_whole -%}
        {%- do check_var_number(name, minimum=1, whole=true) -%}
    {%- endfor -%}
    {%- for name in ['quarantine_future_grace_days', 'offer_suppress_days_after_conversion'] -%}
        {%- do check_var_number(name, minimum=0, whole=true) -%}
    {%- endfor -%}
    {%- for name in ['client_search_friction_max_hire_rate', 'worker_bid_to_win_max_win_rate', 'worker_view_spike_max_contact_rate'] -%}
        {%- do check_var_number(name, minimum=0, maximum=1) -%}
    {%- endfor -%}
    {%- do check_var_number('worker_view_spike_min_growth_factor', minimum=0) -%}
    {%- do check_var_number('holdout_share', minimum=0, below=1) -%}
    {%- set shares = [
        'metrics_expansion_share_healthy_pct', 'metrics_expansion_share_healthy_max_pct',
        'metrics_expansion_share_underdeveloped_pct', 'metrics_retention_floor_pct',
        'metrics_ready_without_conversion_green_below_pct', 'metrics_ready_without_conversion_amber_below_pct',
        'metrics_conversion_triggered_target_pct', 'metrics_conversion_broadcast_ceiling_pct',
    ] -%}
    {%- for name in shares -%}
        {%- do check_var_number(name, minimum=0, maximum=100) -%}
    {%- endfor -%}
    {%- do check_var_number('metrics_time_to_upgrade_amber_max_days', minimum=1, whole=true) -%}
    {%- for name in ['metrics_lift_ci_low_green_above_pct_points', 'metrics_lift_amber_above_pct_points'] -%}
        {%- do check_var_number(name, minimum=-100, maximum=100) -%}
    {%- endfor -%}
    {%- for name in ['tier_warming_min_score', 'tier_ready_min_score', 'tier_overdue_min_score'] -%}
        {%- do check_var_number(name, minimum=0) -%}
    {%- endfor -%}
    {%- if not (var('tier_warming_min_score') < var('tier_ready_min_score') < var('tier_overdue_min_score')) -%}
        {{ exceptions.raise_compiler_error(
            "vars tier_warming_min_score (" ~ var('tier_warming_min_score') ~ "), tier_ready_min_score ("
            ~ var('tier_ready_min_score') ~ ") and tier_overdue_min_score (" ~ var('tier_overdue_min_score')
            ~ ") must increase: Cold < warming <= Warming < ready <= Ready < overdue <= Overdue"
        ) }}
    {%- endif -%}
    {#- Each band's edges in order: the lower (worse) edge must not pass the higher. -#}
    {%- set ordered_edges = [
        ('metrics_expansion_share_underdeveloped_pct', 'metrics_expansion_share_healthy_pct'),
        ('metrics_expansion_share_healthy_pct', 'metrics_expansion_share_healthy_max_pct'),
        ('metrics_time_to_upgrade_target_days', 'metrics_time_to_upgrade_amber_max_days'),
        ('metrics_ready_without_conversion_green_below_pct', 'metrics_ready_without_conversion_amber_below_pct'),
        ('metrics_conversion_broadcast_ceiling_pct', 'metrics_conversion_triggered_target_pct'),
    ] -%}
    {%- for low, high in ordered_edges -%}
        {%- if var(low) > var(high) -%}
            {{ exceptions.raise_compiler_error("var('" ~ low ~ "') must not exceed var('" ~ high ~ "')") }}
        {%- endif -%}
    {%- endfor -%}
    {%- for role, weights in var('readiness_signal_weights').items() -%}
        {%- for signal, weight in weights.items() -%}
            {%- if not is_number(weight) or weight < 0 -%}
                {{ exceptions.raise_compiler_error("var('readiness_signal_weights') " ~ role ~ "." ~ signal ~ " must be a number of 0 or more, got " ~ weight | tojson) }}
            {%- endif -%}
        {%- endfor -%}
    {%- endfor -%}
    {%- set destinations = var('sync_destinations') -%}
    {%- if destinations is string or destinations | length == 0 or destinations | reject('in', ['braze', 'iterable']) | list -%}
        {{ exceptions.raise_compiler_error("var('sync_destinations') must be a non-empty list of braze and/or iterable, got " ~ destinations | tojson) }}
    {%- endif -%}
    {%- if var('metrics_free_to_paid_counts_as_expansion') is not boolean -%}
        {{ exceptions.raise_compiler_error("var('metrics_free_to_paid_counts_as_expansion') must be true or false, got " ~ var('metrics_free_to_paid_counts_as_expansion') | tojson) }}
    {%- endif -%}
    {%- do as_of_date() -%}
    {%- do check_var_date('quarantine_earliest_event_date') -%}
{%- endmacro %}

{% macro is_number(value) -%}
    {{ return(value is number and value is not boolean) }}
{%- endmacro %}

{#- var(name) must be a number (whole when `whole`), >= minimum, <= maximum and
    < below, whichever are given. -#}
{% macro check_var_number(name, minimum=none, maximum=none, below=none, whole=false) -%}
    {%- set value = var(name) -%}
    {%- set problems = [] -%}
    {%- if not is_number(value) -%}
        {%- do problems.append('a number') -%}
    {%- else -%}
        {%- if whole and value != (value | int) -%}{%- do problems.append('a whole number') -%}{%- endif -%}
        {%- if minimum is not none and value < minimum -%}{%- do problems.append('at least ' ~ minimum) -%}{%- endif -%}
        {%- if maximum is not none and value > maximum -%}{%- do problems.append('at most ' ~ maximum) -%}{%- endif -%}
        {%- if below is not none and value >= below -%}{%- do problems.append('below ' ~ below) -%}{%- endif -%}
    {%- endif -%}
    {%- if problems -%}
        {%- set kind = 'a whole number' if whole else 'a number' -%}
        {%- if minimum is not none and below is not none -%}
            {%- set rule = kind ~ ' in [' ~ minimum ~ ', ' ~ below ~ ')' -%}
        {%- elif minimum is not none and maximum is not none -%}
            {%- set rule = kind ~ ' in [' ~ minimum ~ ', ' ~ maximum ~ ']' -%}
        {%- elif minimum is not none -%}
            {%- set rule = kind ~ ' >= ' ~ minimum -%}
        {%- else -%}
            {%- set rule = kind -%}
        {%- endif -%}
        {{ exceptions.raise_compiler_error("var('" ~ name ~ "') must be " ~ rule ~ ", got " ~ value | tojson) }}
    {%- endif -%}
{%- endmacro %}

{#- var(name) must be a calendar date written YYYY-MM-DD. -#}
{% macro check_var_date(name) -%}
    {%- set text = var(name) | string -%}
    {%- if not is_calendar_date(text) -%}
        {{ exceptions.raise_compiler_error("var('" ~ name ~ "') must be a date as YYYY-MM-DD, got '" ~ text ~ "'") }}
    {%- endif -%}
{%- endmacro %}

{#- True when `text` is YYYY-MM-DD and names a day of the calendar (no 2025-02-30). -#}
{% macro is_calendar_date(text) -%}
    {%- if not modules.re.match('^\\d{4}-\\d{2}-\\d{2}$', text) -%}
        {{ return(false) }}
    {%- endif -%}
    {%- set year = text[0:4] | int -%}
    {%- set month = text[5:7] | int -%}
    {%- set day = text[8:10] | int -%}
    {%- set is_leap = (year % 4 == 0 and year % 100 != 0) or year % 400 == 0 -%}
    {%- set month_days = [31, 29 if is_leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] -%}
    {{ return(year >= 1 and 1 <= month <= 12 and 1 <= day <= month_days[month - 1]) }}
{%- endmacro %}

{#- The raw data contract's one type rule dbt cannot repair: every `*_at` column
    of a marketplace source is timestamptz. A timestamp without time zone would be
    read in the session's time zone and shift events across day windows, so the
    run stops naming the table and column (the raw gate blocks it too:
    timestamps_have_time_zone). Tables that do not exist yet are skipped. -#}
{% macro validate_raw_timestamp_types() -%}
    {%- if not execute -%}{{ return('') }}{%- endif -%}
    {%- set naive = [] -%}
    {%- for node in graph.sources.values() if node.package_name == project_name -%}
        {%- set relation = adapter.get_relation(database=node.database, schema=node.schema, identifier=node.identifier) -%}
        {%- if relation is not none -%}
            {%- for column in adapter.get_columns_in_relation(relation) -%}
                {%- if column.name.endswith('_at') and column.data_type | lower != type_timestamptz() -%}
                    {%- do naive.append(node.schema ~ '.' ~ node.identifier ~ '.' ~ column.name ~ ' is ' ~ column.data_type) -%}
                {%- endif -%}
            {%- endfor -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if naive -%}
        {{ exceptions.raise_compiler_error(
            "raw timestamp columns must be " ~ type_timestamptz() ~ " (the data contract): " ~ naive | join(', ')
            ~ ". Convert them, e.g. alter table ... alter column ... type timestamptz using ... at time zone 'UTC'"
        ) }}
    {%- endif -%}
    {{ return('') }}
{%- endmacro %}
