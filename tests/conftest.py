pytest_plugins = ["inquest.lab.pytest_plugin"]
