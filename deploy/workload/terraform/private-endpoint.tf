# Terraform (azurerm) equivalent of ../bicep/private-endpoint.bicep: a
# Private Endpoint to the corporate egressd Private Link Service with a
# static IP and a manual connection request (approved by the corporate team).

variable "private_link_service_alias" {
  description = "Alias of the corporate Private Link Service, from the corporate team."
  type        = string
}

variable "subnet_id" {
  description = "Resource ID of the workload subnet the endpoint lives in."
  type        = string
}

variable "private_ip_address" {
  description = "Static private IP of the endpoint; the proxy address workloads use."
  type        = string
  default     = "10.2.128.100"
}

variable "request_message" {
  description = "Shown to the corporate team when they approve the connection."
  type        = string
}

variable "name" {
  type    = string
  default = "pe-egressd"
}

variable "resource_group_name" {
  type = string
}

variable "location" {
  type = string
}

resource "azurerm_private_endpoint" "egressd" {
  name                          = var.name
  resource_group_name           = var.resource_group_name
  location                      = var.location
  subnet_id                     = var.subnet_id
  custom_network_interface_name = "${var.name}-nic"

  private_service_connection {
    name                              = "${var.name}-connection"
    private_connection_resource_alias = var.private_link_service_alias
    # Manual: the PLS belongs to another tenant, whose owner approves it.
    is_manual_connection = true
    request_message      = var.request_message
  }

  # A Private Link Service has no subresource names, so the one
  # ip_configuration only pins the address.
  ip_configuration {
    name               = "egressd"
    private_ip_address = var.private_ip_address
  }
}

output "proxy_url" {
  value = "http://${var.private_ip_address}:3128"
}
