import SSMKit
print("ssm")
