{{ readiness_mart('worker', 'int_workers_signals_evaluated', 'worker_id') }}
