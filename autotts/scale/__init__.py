"""Scale-out of the ES search: one generation's population scored over Ray actors or DDP ranks.

Members of a population are independent given the generation's common random
numbers (episodes, β values), so the population splits into contiguous shards
(`shards`), each scored where the stores already live -- a Ray actor that built
the objective once from a picklable recipe (`ray_pool`), or a DDP rank that
scores its slice and all-gathers the rest (`ranks`); `syncs` counts the host
syncs a rollout makes. Scale is a service of discovery: it shards any objective
of the shape `shards.PopulationObjective` and never imports discovery, which
builds the objective and its recipe and picks where it runs
(`autotts.discovery.scale_out`, `autotts.discovery.recipe`).
"""
