{#- What every destination learns about a user, as one JSON object of custom
    attributes: readiness, offer, suppression, upgrade state, the personal
    numbers and the platform comparison the messages quote. Users in the
    holdout and Cold users are left out (the sync clears users who leave this
    set). No volatile fields (no dates of the run, no days-in-tier), so an
    unchanged user hashes the same on the next run and is not sent again.
    Attributes without a value are left out of the object; the sync clears an
    attribute a user had before and no longer has (null in Braze, which removes
    it). Never email or phone: identity fields are added per destination.

    upshift_estimated_monthly_upside (workers): the last 28 days' earnings times
    the extra contacts per view promoted workers get (multiplier - 1), the
    number an Overdue worker's hard offer quotes. -#}
with

readiness as (

    select
        user_id,
        role,
        readiness_tier,
        readiness_score,
        readiness_reasons,
        offer_code,
        is_suppressed,
        suppression_reason,
        has_upgraded,
        last_upgraded_at,
        current_plan_code
    from {{ ref('user_readiness') }}

),

holdout as (

    select * from {{ ref('int_users_holdout_assigned') }}

),

numbers as (

    select * from {{ ref('int_users_personal_numbers_computed') }}

),

benchmarks as (

    select * from {{ ref('platform_benchmarks') }}

),

upsides as (

    select
        numbers.user_id,
        round(
            cast({{ json_text('numbers.personal_numbers', 'earnings_last_28_days') }} as {{ type_decimal() }})
            * greatest(benchmarks.promoted_contact_rate_multiplier - 1, 0)
        ) as estimated_monthly_upside
    from numbers
    cross join benchmarks
    where numbers.role = 'worker'

),

attributed as (

    select
        readiness.user_id,
        readiness.role,
        readiness.readiness_tier,
        {{ json_merge(json_object({
            'upshift_role': 'readiness.role',
            'upshift_readiness_tier': 'readiness.readiness_tier',
            'upshift_readiness_score': 'readiness.readiness_score',
            'upshift_offer_code': 'readiness.offer_code',
            'upshift_offer_suppressed': 'readiness.is_suppressed',
            'upshift_suppression_reason': 'readiness.suppression_reason',
            'upshift_signals': json_array_pluck('readiness.readiness_reasons', 'signal'),
            'upshift_reasons': json_array_pluck('readiness.readiness_reasons', 'summary'),
            'upshift_has_upgraded': 'readiness.has_upgraded',
            'upshift_upgraded_on': 'cast(cast(readiness.last_upgraded_at as date) as ' ~ dbt.type_string() ~ ')',
            'upshift_current_plan': 'readiness.current_plan_code',
            'upshift_paid_hire_speedup_pct':
                "case when readiness.role = 'client' then benchmarks.paid_client_hire_speedup_pct end",
            'upshift_promoted_contact_multiplier':
                "case when readiness.role = 'worker' then benchmarks.promoted_contact_rate_multiplier end",
            'upshift_estimated_monthly_upside': 'upsides.estimated_monthly_upside',
        }, json_keys=['upshift_signals', 'upshift_reasons']), json_prefix_keys('numbers.personal_numbers', 'upshift_')) }}
            as attributes
    from readiness
    inner join holdout
        on readiness.user_id = holdout.user_id
    left join numbers
        on readiness.user_id = numbers.user_id
    left join upsides
        on readiness.user_id = upsides.user_id
    cross join benchmarks
    where
        not holdout.is_holdout
        and readiness.readiness_tier != 'Cold'

),

stripped as (

    select
        user_id,
        role,
        readiness_tier,
        {{ json_strip_nulls('attributes') }} as attributes
    from attributed

),

final as (

    select
        user_id,
        role,
        readiness_tier,
        attributes,
        md5(cast(attributes as {{ dbt.type_string() }})) as attributes_hash
    from stripped

)

select * from final
