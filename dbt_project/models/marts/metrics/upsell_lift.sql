{#- Signal-triggered conversion against the holdout, per trigger type and offer
    (and `all`): the rates of treatment and holdout users, the absolute lift in
    percentage points and its 95% confidence interval (normal approximation of
    the difference of two proportions). Each arm counts distinct users: a user
    with several triggers or reached on several channels counts once, converted
    when any of those triggers converted. The lift is null while a side has no
    users - with an empty holdout there is nothing to compare against. This is
    where "signal-triggered converts at 12-20% vs 2-4% broadcast" is checked. -#}
{%- set arm_user_counts -%}
        count(distinct case when arm = 'treatment' then user_id end) as treatment_users,
        count(distinct case when arm = 'treatment' and has_converted then user_id end) as treatment_converted,
        count(distinct case when arm = 'holdout' then user_id end) as holdout_users,
        count(distinct case when arm = 'holdout' and has_converted then user_id end) as holdout_converted
{%- endset %}

with

observed as (

    select * from {{ ref('trigger_conversions') }}

),

by_offer as (

    select
        trigger_type,
        offer_code,
        {{ arm_user_counts }}
    from observed
    group by
        trigger_type,
        offer_code

    union all

    select
        'all' as trigger_type,
        'all' as offer_code,
        {{ arm_user_counts }}
    from observed

),

rates as (

    select
        *,
        cast(treatment_converted as {{ type_decimal() }}) / nullif(treatment_users, 0) as treatment_rate,
        cast(holdout_converted as {{ type_decimal() }}) / nullif(holdout_users, 0) as holdout_rate
    from by_offer

),

final as (

    select
        {{ as_of_date_literal() }} as as_of_date,
        trigger_type,
        offer_code,
        treatment_users,
        treatment_converted,
        round(100 * treatment_rate, 2) as treatment_rate_pct,
        holdout_users,
        holdout_converted,
        round(100 * holdout_rate, 2) as holdout_rate_pct,
        round(100 * (treatment_rate - holdout_rate), 2) as lift_pct_points,
        round(
            100 * (
                treatment_rate - holdout_rate
                - 1.96 * sqrt(
                    treatment_rate * (1 - treatment_rate) / treatment_users
                    + holdout_rate * (1 - holdout_rate) / holdout_users
                )
            ),
            2
        ) as lift_ci_low_pct_points,
        round(
            100 * (
                treatment_rate - holdout_rate
                + 1.96 * sqrt(
                    treatment_rate * (1 - treatment_rate) / treatment_users
                    + holdout_rate * (1 - holdout_rate) / holdout_users
                )
            ),
            2
        ) as lift_ci_high_pct_points
    from rates

)

select * from final
