{#- Braze: one row per user to keep in Braze, identified by external_id (our
    user_id), with the custom attributes /users/track sets. Segments in Braze
    are built on these attributes (e.g. upshift_readiness_tier = 'Ready'). The
    sync sends only rows whose attributes_hash changed since Braze last
    accepted them, and clears the attributes of users who left this table. -#}
with

attributes as (

    select * from {{ ref('messaging_user_attributes') }}

),

final as (

    select
        cast(user_id as {{ dbt.type_string() }}) as external_id,
        cast(role as {{ dbt.type_string() }}) as role,
        cast(readiness_tier as {{ dbt.type_string() }}) as readiness_tier,
        cast(attributes as {{ type_json() }}) as attributes,
        cast(attributes_hash as {{ dbt.type_string() }}) as payload_hash
    from attributes

)

select * from final
