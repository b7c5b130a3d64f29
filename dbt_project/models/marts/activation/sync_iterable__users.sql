{#- Iterable: one row per user to keep in Iterable, identified by userId (our
    user_id) with the email Iterable also keys profiles on, the dataFields
    /api/users/bulkUpdate sets, and the static lists the user belongs to (one
    per side and tier, e.g. upshift_client_ready). The sync sends only changed
    rows, subscribes users to lists they entered and unsubscribes them from
    lists they left (or from all, when they left this table). -#}
with

attributes as (

    select * from {{ ref('messaging_user_attributes') }}

),

users as (

    select
        user_id,
        email
    from {{ ref('int_users_validated') }}
    where is_valid

),

final as (

    select
        cast(attributes.user_id as {{ dbt.type_string() }}) as user_id,
        cast(users.email as {{ dbt.type_string() }}) as email,
        cast(attributes.role as {{ dbt.type_string() }}) as role,
        cast(attributes.readiness_tier as {{ dbt.type_string() }}) as readiness_tier,
        cast(attributes.attributes as {{ type_json() }}) as data_fields,
        {{ json_array([
            "concat('upshift_', attributes.role, '_', lower(attributes.readiness_tier))"
        ]) }} as list_names,
        md5(concat(
            attributes.attributes_hash,
            '|', coalesce(users.email, ''),
            '|', lower(attributes.readiness_tier)
        )) as payload_hash
    from attributes
    inner join users
        on attributes.user_id = users.user_id

)

select * from final
