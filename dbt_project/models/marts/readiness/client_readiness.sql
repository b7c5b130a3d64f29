{{ readiness_mart('client', 'int_clients_signals_evaluated', 'client_id') }}
