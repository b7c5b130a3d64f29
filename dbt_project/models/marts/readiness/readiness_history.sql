{#- The published readiness history: one row per user per as-of date, copied
    from int_users_readiness_scored only after the scores gate passed for the
    date (the DAG builds this mart in the activation stage, behind scores_gate),
    so a blocked date never reaches the marts, the triggers or the sync.

    Incremental by as-of date: a run deletes and rewrites its own date, so
    rerunning a date replaces it and never duplicates it. full_refresh is off,
    as for the scored history it copies. -#}
{{
    config(
        materialized='incremental',
        full_refresh=false,
        on_schema_change='append_new_columns',
        indexes=[
            {'columns': ['as_of_date', 'user_id'], 'unique': true},
        ],
        **as_of_incremental_config(),
    )
}}

with

scored as (

    select * from {{ ref('int_users_readiness_scored') }}
    where as_of_date = {{ as_of_date_literal() }}

),

final as (

    select
        as_of_date,
        user_id,
        role,
        readiness_score,
        readiness_tier,
        readiness_reasons,
        previous_readiness_tier,
        tier_entered_on,
        ready_streak_started_on,
        days_at_ready
    from scored

)

select * from final
