{{ validate_references(
    'stg_marketplace__contacts',
    columns=['contact_id', 'worker_id', 'client_id', 'contacted_at'],
    references=[{'column': 'worker_id', 'role': 'worker'}, {'column': 'client_id', 'role': 'client'}],
) }}
