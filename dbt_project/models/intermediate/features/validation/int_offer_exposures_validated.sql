{{ validate_references(
    'stg_marketplace__offer_exposures',
    columns=['offer_exposure_id', 'user_id', 'offer_code', 'channel', 'exposed_at'],
    references=[{'column': 'user_id', 'role': none}],
) }}
