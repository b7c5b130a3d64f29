{#- Which users are in the measurement holdout: a deterministic share
    (var holdout_share) by a salted hash of the user id, stable across runs and
    dates. Held-out users are scored and tracked but receive nothing. -#}
with

users as (

    select
        user_id,
        role
    from {{ ref('int_users_validated') }}
    where is_valid

),

final as (

    select
        user_id,
        role,
        {{ holdout_bucket('user_id') }} as holdout_bucket,
        {{ holdout_bucket('user_id') }} < {{ (var('holdout_share') * 10000) | int }} as is_holdout
    from users

)

select * from final
