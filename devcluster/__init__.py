"""Local development cluster: a real ZooKeeper subprocess and an emulated Mesos.

Nothing here is a production component. The controller never imports this
package; tests and the `dev` command do.
"""
