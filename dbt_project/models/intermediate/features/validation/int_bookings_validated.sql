{{ validate_references(
    'stg_marketplace__bookings',
    columns=['booking_id', 'client_id', 'worker_id', 'category', 'amount', 'currency', 'booking_status', 'booked_at'],
    references=[{'column': 'client_id', 'role': 'client'}, {'column': 'worker_id', 'role': 'worker'}],
) }}
