"""Cell executors: the contract (:mod:`.base`) and the built-in local, Dask, Ray and SLURM back ends."""
