{{ validate_references(
    'stg_marketplace__profile_views',
    columns=['profile_view_id', 'worker_id', 'viewer_id', 'viewed_at'],
    references=[{'column': 'worker_id', 'role': 'worker'}, {'column': 'viewer_id', 'role': none, 'nullable': true}],
) }}
