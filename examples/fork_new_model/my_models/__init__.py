"""Models of a fork: each is one class here plus one YAML in conf/model/."""
