"""Round trainers and mask sources: the contracts (:mod:`.base`) and the built-ins."""
