{{ validate_references(
    'stg_marketplace__proposals',
    columns=['proposal_id', 'worker_id', 'job_id', 'category', 'proposal_status', 'submitted_at'],
    references=[{'column': 'worker_id', 'role': 'worker'}],
) }}
