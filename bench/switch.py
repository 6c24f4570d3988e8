"""Switch throughput and latency: ``python bench/switch.py [options]`` runs the load generator
(:mod:`switch.loadgen`; every option of ``python -m switch.loadgen --help`` applies)."""

from switch.loadgen import main

if __name__ == "__main__":
    main()
