{#- The published readiness history: one row per user per as-of date, copied
    from int_users_readiness_scored only after the scores gate passed for the
    date (the DAG builds this mart in the activation stage, behind scores_gate),
    so a blocked date never reaches the marts, the triggers or the sync. Its
    columns are the scored history's, selected whole: the score, tier and
    streak are defined there only.

    Kept as the scored history is (macros/readiness_history_config.sql): a
    run deletes and rewrites its own as-of date, so rerunning a date replaces
    it and never duplicates it; full_refresh is off. -#}
{{ config(**readiness_history_config()) }}

with

scored as (

    select * from {{ ref('int_users_readiness_scored') }}
    where as_of_date = {{ as_of_date_literal() }}

)

select * from scored
