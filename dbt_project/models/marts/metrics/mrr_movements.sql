{#- Monthly MRR movements from subscriptions, up to the as-of date (the current
    month is measured at the as-of date). A user's MRR at a month's end is the
    sum of the MRR of their paid, non-trial periods active in that month (trials
    are excluded until they convert: the paid period that follows counts).
    Boundary rule, as in dbt-labs' mrr-playbook: a period is active in month M
    when start_month <= M < end_month, both ends on the same month basis
    (start_month = the month of started_at, end_month = the month of ended_at).
    So a period ending exactly at midnight on the 1st stays in the month it paid
    for, a period from the 1st to the 1st counts in that one month, a plan
    change exactly on the 1st is one expansion or contraction in the new month,
    and a period ending mid-month is gone at that month's end. An end at or after
    the as-of date is not known yet: the period is still open. Each user's
    month-end MRR is compared with the previous month's:
    - new: a user's first paid MRR;
    - expansion: an increase of a paying user's MRR (an upgrade between paid
      plans, a boost on top of a plan);
    - contraction: a decrease to a lower, non-zero MRR;
    - churn: a decrease to zero;
    - reactivation: back from zero for a user who paid before.
    Free-to-paid: in this plan catalog the free plans are rank 0 of the same
    ladder, so a free marketplace user's first paid plan could be read as
    expansion. By default it is new MRR (var
    metrics_free_to_paid_counts_as_expansion: false), which keeps the guide's
    25-35% band for expansion's share of new MRR meaningful; set the var to true
    to count the first paid plan of a user who joined in an earlier month as
    expansion (then "new" is only users who joined and paid in the same month).
    Movements within a month net out at its end (a downgrade and a re-upgrade
    in the same month is no movement). -#}
with

users as (

    select
        user_id,
        created_at
    from {{ ref('int_users_validated') }}
    where is_valid

),

paid_periods as (

    select
        user_id,
        mrr,
        cast({{ dbt.date_trunc('month', 'started_at') }} as date) as start_month,
        case
            when ended_at < {{ as_of_timestamp() }} then cast({{ dbt.date_trunc('month', 'ended_at') }} as date)
        end as end_month
    from {{ ref('int_subscriptions_validated') }}
    where
        is_valid
        and not is_trial
        and mrr > 0
        and started_at < {{ as_of_timestamp() }}

),

bounds as (

    select
        min(start_month) as first_month,
        cast({{ dbt.date_trunc('month', dbt.dateadd('day', -1, as_of_timestamp())) }} as date) as last_month
    from paid_periods

),

months as (

    select cast(month_starts.month_start as date) as month_start
    from bounds
    {{ join_month_series('bounds.first_month', 'bounds.last_month', 'month_starts', 'month_start') }}

),

subscribers as (

    select distinct user_id
    from paid_periods

),

subscriber_months as (

    select
        months.month_start,
        subscribers.user_id
    from months
    cross join subscribers

),

month_end_mrr as (

    select
        subscriber_months.month_start,
        subscriber_months.user_id,
        coalesce(sum(paid_periods.mrr), 0) as ending_mrr
    from subscriber_months
    left join paid_periods
        on
            subscriber_months.user_id = paid_periods.user_id
            and subscriber_months.month_start >= paid_periods.start_month
            and (paid_periods.end_month is null or subscriber_months.month_start < paid_periods.end_month)
    group by
        subscriber_months.month_start,
        subscriber_months.user_id

),

compared as (

    select
        month_end_mrr.month_start,
        month_end_mrr.user_id,
        month_end_mrr.ending_mrr,
        coalesce(lag(month_end_mrr.ending_mrr) over user_months, 0) as starting_mrr,
        coalesce(max(month_end_mrr.ending_mrr) over earlier_months, 0) > 0 as has_paid_before,
        users.created_at >= month_end_mrr.month_start as joined_this_month
    from month_end_mrr
    left join users
        on month_end_mrr.user_id = users.user_id
    window
        user_months as (partition by month_end_mrr.user_id order by month_end_mrr.month_start),
        earlier_months as (
            partition by month_end_mrr.user_id
            order by month_end_mrr.month_start
            rows between unbounded preceding and 1 preceding
        )

),

classified as (

    select
        month_start,
        user_id,
        ending_mrr,
        case
            when starting_mrr = 0 and ending_mrr > 0 and has_paid_before then 'reactivation'
            {%- if var('metrics_free_to_paid_counts_as_expansion') %}
            when starting_mrr = 0 and ending_mrr > 0 and coalesce(joined_this_month, false) then 'new'
            {%- else %}
            when starting_mrr = 0 and ending_mrr > 0 then 'new'
            {%- endif %}
            when ending_mrr > starting_mrr then 'expansion'
            when ending_mrr = 0 and starting_mrr > 0 then 'churn'
            when ending_mrr < starting_mrr then 'contraction'
        end as movement,
        ending_mrr - starting_mrr as mrr_change
    from compared

),

final as (

    select
        month_start,
        {{ as_of_date_literal() }} as as_of_date,
        coalesce(sum(case when movement = 'new' then mrr_change end), 0) as new_mrr,
        coalesce(sum(case when movement = 'expansion' then mrr_change end), 0) as expansion_mrr,
        coalesce(-sum(case when movement = 'contraction' then mrr_change end), 0) as contraction_mrr,
        coalesce(-sum(case when movement = 'churn' then mrr_change end), 0) as churned_mrr,
        coalesce(sum(case when movement = 'reactivation' then mrr_change end), 0) as reactivation_mrr,
        coalesce(sum(mrr_change), 0) as net_new_mrr,
        sum(ending_mrr) as ending_mrr,
        count(case when ending_mrr > 0 then 1 end) as paying_users,
        count(case when movement = 'expansion' then 1 end) as expanding_users,
        round(
            100 * coalesce(sum(case when movement = 'expansion' then mrr_change end), 0)
            / nullif(coalesce(sum(case when movement in ('new', 'expansion') then mrr_change end), 0), 0),
            1
        ) as expansion_share_of_new_mrr_pct
    from classified
    group by month_start

)

select
    *,
    case
        when expansion_share_of_new_mrr_pct is null then 'grey'
        when expansion_share_of_new_mrr_pct >= {{ var('metrics_expansion_share_healthy_pct') }} then 'green'
        when expansion_share_of_new_mrr_pct >= {{ var('metrics_expansion_share_underdeveloped_pct') }} then 'amber'
        else 'red'
    end as expansion_share_flag
from final
