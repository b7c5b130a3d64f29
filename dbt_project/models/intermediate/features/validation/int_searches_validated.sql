{{ validate_references(
    'stg_marketplace__searches',
    columns=['search_id', 'client_id', 'category', 'searched_at'],
    references=[{'column': 'client_id', 'role': 'client'}],
) }}
