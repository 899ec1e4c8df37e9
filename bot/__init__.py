"""prombot: patient reported outcome measures by SMS for GP practices."""
