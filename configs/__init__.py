"""The paper's configurations as YAML (installed as ``mannrl_gym.configs``): ``logic.yaml`` is
Table 1, ``pos.yaml`` Table 2, ``sentence.yaml`` and ``translate.yaml`` Table 3
(``sentence-pg.yaml``, ``translate-pg.yaml`` and ``sentence-ewt.yaml``: the same on shorter
sentences). ``mannrl train`` reads them as files; the environment ids register their settings
(``presets``)."""
